#!/usr/bin/env bash
# Regenerates the README screenshots from the real running console: starts
# `inferops console` (embedded broker, model server, demo traffic, worker) in
# a detached tmux pane, drives it with keys, captures the pane with its
# colours (tmux capture-pane -e -p) and renders each capture to PNG with
# freeze. Usage: screenshots/capture.sh [path/to/inferops]
set -euo pipefail

BIN=${1:-./bin/inferops}
OUT=$(cd "$(dirname "$0")" && pwd)
COLS=${COLS:-120}
ROWS=${ROWS:-40}
WARMUP=${WARMUP:-60}     # seconds of traffic before the overview, so the charts have history
FREEZE=${FREEZE:-github.com/charmbracelet/freeze@v0.2.2}

for tool in tmux rsvg-convert fc-list; do
  command -v "$tool" >/dev/null || { echo "screenshots: $tool is missing (apt-get install tmux librsvg2-bin fontconfig fonts-unifont)" >&2; exit 1; }
done
fc-list : family | grep -i unifont >/dev/null || { echo "screenshots: the Unifont font is missing (apt-get install fonts-unifont)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "screenshots: $BIN is not built (run make build)" >&2; exit 1; }

work=$(mktemp -d)
sock="inferops-shots-$$"
workers=() # pids of the extra worker processes of the fleet capture
cleanup() {
  for pid in "${workers[@]}"; do kill "$pid" 2>/dev/null || true; done
  tmux -L "$sock" kill-server 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Every listener on a free port and state in a temp dir: never the user's.
args=(console --data-dir "$work/state" --kafka-addr 127.0.0.1:0 --demo-rate 1000)
help=$("$BIN" console --help 2>&1 || true)
for f in grpc-addr rest-addr; do
  if grep -q -- "--$f" <<<"$help"; then args+=("--$f" 127.0.0.1:0); fi
done
# Perf runs short and at a rate a laptop absorbs, twice, so the table shows
# the comparison with the previous run.
if grep -q -- "--perf-duration" <<<"$help"; then args+=(--perf-duration 10s --perf-rate "${PERF_RATE:-2000}"); fi
# The rollout capture: steps the demo's traffic can judge within a minute.
if grep -q -- "--rollout-steps" <<<"$help"; then args+=(--rollout-steps 10,50,100 --rollout-hold 2m --rollout-min-samples 50); fi

tmux -L "$sock" -f /dev/null new-session -d -x "$COLS" -y "$ROWS" "$BIN ${args[*]}; echo \$? >$work/exit; sleep 600"
tmux -L "$sock" set-option -g status off >/dev/null

pane() { tmux -L "$sock" capture-pane -e -p -t 0; }
# plain is the pane without colours, read whole before grep looks at it
# (grep -q closing a pipe early would fail the pipeline under pipefail).
plain() { tmux -L "$sock" capture-pane -p -t 0; }
waitfor() { # waitfor PATTERN SECONDS
  for _ in $(seq "$2"); do
    if grep -Eq -- "$1" <<<"$(plain)"; then return 0; fi
    sleep 1
  done
  echo "screenshots: gave up waiting for '$1'; the pane shows:" >&2
  plain >&2
  exit 1
}

waitgone() { # waitgone PATTERN SECONDS: until the pane has not shown it for 3 s running
  local miss=0
  for _ in $(seq "$2"); do
    if grep -Eq -- "$1" <<<"$(plain)"; then miss=0; else miss=$((miss + 1)); fi
    [ "$miss" -ge 3 ] && return 0
    sleep 1
  done
  echo "screenshots: '$1' still on screen after $2 s" >&2
  exit 1
}

render() { # render NAME: the current pane -> $OUT/NAME.png
  local txt="$work/$1.txt"
  pane >"$txt"
  # freeze writes the SVG; librsvg rasterises it with GNU Unifont. Why not
  # freeze's own PNG: its embedded JetBrains Mono has no braille, and the
  # fallback glyphs are narrower, which shears every chart row. Unifont is
  # monospace and covers braille, so the picture is the terminal's grid.
  go run "$FREEZE" --language ansi --font.family Unifont --font.size 16 --line-height 1.0 -o "$work/$1.svg" "$txt" >/dev/null
  rsvg-convert -o "$OUT/$1.png" "$work/$1.svg"
  echo "screenshots: wrote $OUT/$1.png"
}

waitfor "workers" 60
sleep "$WARMUP"
render overview

tmux -L "$sock" send-keys '?'
waitfor "Any key closes this" 5
render help
tmux -L "$sock" send-keys Escape
sleep 1

if "$BIN" perf --help >/dev/null 2>&1; then
  for run in 1 2; do
    tmux -L "$sock" send-keys p
    waitfor "perf scenario" 5
    tmux -L "$sock" send-keys Enter
    waitfor "perf small (starting|warmup|running|draining|done)" 60
    waitgone "perf small (starting|warmup|running|draining|done)" 300
    waitfor "this run" 10
  done
  sleep 2
  render perf
fi

# The fleet view: two headless workers join the console's own pool (three
# instances), then + scales the whole fleet, acknowledged in the events.
if "$BIN" worker --help 2>&1 | grep -q -- "--instance"; then
  log="$work/state/console.log"
  brokers=$(grep -o '"msg":"console starting".*' "$log" | grep -o '"brokers":\["[^"]*"' | head -1 | sed 's/.*\["//; s/"$//')
  tfs=$(grep -o '"msg":"console starting".*' "$log" | grep -o '"tfserving":"[^"]*"' | head -1 | sed 's/.*:"//; s/"$//')
  for name in web-1 web-2; do
    mkdir -p "$work/$name"
    HOME="$work/$name" XDG_STATE_HOME="$work/$name/state" INFEROPS_METRICS_ADDR= \
      "$BIN" worker --config= --brokers "$brokers" --tfserving "$tfs" --instance "$name" --workers 2 >"$work/$name/log" 2>&1 &
    workers+=($!)
  done
  waitfor "on 3 instances" 90
  sleep 15
  tmux -L "$sock" send-keys +
  waitfor "instances applied scale to" 30
  # Focus the workers panel (tab order: lag, throughput, tf serving,
  # models, workers, ...): after the perf runs the perf results share its
  # slot.
  for _ in $(seq 8); do
    grep -q "╭─ workers fleet" <<<"$(plain)" && break
    tmux -L "$sock" send-keys Tab
    sleep 1
  done
  sleep 4
  render fleet
  for pid in "${workers[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${workers[@]}"; do wait "$pid" 2>/dev/null || true; done
  workers=()
fi

# The rollout panel: v -> version 2 -> roll out gradually -> y, then the
# first step held with its gates judged on the demo's traffic.
# pickversion N: v, the cursor down to "version N", enter.
pickversion() {
  tmux -L "$sock" send-keys v
  waitfor "target version for" 10
  for _ in $(seq 8); do
    grep -q "▸ version $1" <<<"$(plain)" && break
    tmux -L "$sock" send-keys Down
    sleep 0.5
  done
  tmux -L "$sock" send-keys Enter
}
if grep -q -- "--rollout-steps" <<<"$help"; then
  # The fleet serves latest (v2): switch it to v1 first, so v2 is new.
  pickversion 1
  sleep 1
  if grep -q "switch now" <<<"$(plain)"; then tmux -L "$sock" send-keys Enter; sleep 1; fi
  if grep -q "y yes" <<<"$(plain)"; then tmux -L "$sock" send-keys y; fi
  waitfor "1→v1" 60
  sleep 12
  pickversion 2
  waitfor "roll out gradually" 10
  tmux -L "$sock" send-keys Down
  sleep 0.5
  tmux -L "$sock" send-keys Enter
  waitfor "y yes" 10
  tmux -L "$sock" send-keys y
  waitfor "rollout v2" 60
  waitfor "latency +PASS" 120
  sleep 5
  render rollout
  "$BIN" rollout abort --config= --brokers "${brokers:-127.0.0.1:9092}" >/dev/null 2>&1 || true
  sleep 2
fi

# q drains the worker and stops everything; it must exit cleanly.
tmux -L "$sock" send-keys q
for _ in $(seq 30); do
  [ -f "$work/exit" ] && break
  sleep 1
done
[ "$(cat "$work/exit" 2>/dev/null)" = 0 ] || { echo "screenshots: the console did not quit cleanly:" >&2; pane >&2; exit 1; }
