// Package tui is the inferops console: a bubbletea v2 program that renders
// one immutable view-model (Data) and turns keys into commands on a Backend.
//
// Layout (layout.go), keys (keys.go) and styles (styles.go) each live in
// one place; every panel is one file (panel_*.go) rendering from Data and
// the UI state; overlays (help, version picker, perf menu, confirmation)
// are in overlay.go. The package never talks to Kafka or gRPC: tui/live
// fills Data from the real collector, worker, model server and perf runner
// and implements Backend. Because the screen is a pure function of Data,
// size and UI state, screens are golden-tested (testdata/*.golden).
package tui
