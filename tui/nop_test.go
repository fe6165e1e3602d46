package tui

import (
	"context"
	"errors"
)

// nopBackend lets golden tests open the menus that a static model refuses.
type nopBackend struct{ d Data }

func (b nopBackend) Snapshot() Data                        { return b.d }
func (nopBackend) ScaleTo(context.Context, int) error      { return errors.New("static") }
func (nopBackend) SetTarget(context.Context, string) error { return errors.New("static") }
func (nopBackend) SetPaused(context.Context, bool) error   { return errors.New("static") }
func (nopBackend) AdjustDemoRate(int) (float64, error)     { return 0, errors.New("static") }
func (nopBackend) StartPerf(context.Context, string) error { return errors.New("static") }
func (nopBackend) CancelPerf() error                       { return errors.New("static") }
func (nopBackend) ExportReport() (string, string, error)   { return "", "", errors.New("static") }

// fleetNop is nopBackend that also steers a fleet (tui.Fleet), so golden
// screens show the fleet's prompts.
type fleetNop struct{ nopBackend }

func (fleetNop) ScaleFleet(context.Context, int) (string, error) { return "", errors.New("static") }
func (fleetNop) ScaleInstance(context.Context, string, int) (string, error) {
	return "", errors.New("static")
}
func (fleetNop) TargetFleet(context.Context, string) (string, error) { return "", errors.New("static") }
func (fleetNop) PauseFleet(context.Context, bool) (string, error)    { return "", errors.New("static") }
