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
