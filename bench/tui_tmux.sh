#!/usr/bin/env bash
# Run a TUI command in a detached 100x30 tmux session, wait for the run's summary, print the screen.
#
#   bench/tui_tmux.sh [command...]        default: orchestrate demo
#
# Environment: TIMEOUT (seconds to wait, default 600), PATTERN (what marks the summary,
# default "Handoff: "), WIDTH/HEIGHT (default 100x30).
# Exits 0 when the summary appeared, 1 when it did not in time, 2 without tmux.
set -u

if ! command -v tmux >/dev/null; then
    echo "tui_tmux: tmux is not installed" >&2
    exit 2
fi

if [ "$#" -eq 0 ]; then
    set -- orchestrate demo
fi
timeout_s="${TIMEOUT:-600}"
pattern="${PATTERN:-Handoff: }"
session="tui-bench-$$"

command_line=$(printf '%q ' "$@")
# Keep the pane alive after the command exits so a crash can still be captured.
tmux new-session -d -s "$session" -x "${WIDTH:-100}" -y "${HEIGHT:-30}" \
    "$command_line; echo '[tui_tmux: command exited with status '\$?']'; sleep 3600"
trap 'tmux kill-session -t "$session" 2>/dev/null' EXIT

deadline=$((SECONDS + timeout_s))
status=1
while [ "$SECONDS" -lt "$deadline" ]; do
    screen=$(tmux capture-pane -p -t "$session")
    if grep -qF -- "$pattern" <<<"$screen"; then
        status=0
        break
    fi
    if grep -qF -- "[tui_tmux: command exited" <<<"$screen"; then
        break
    fi
    sleep 0.5
done

tmux capture-pane -p -t "$session"
if [ "$status" -ne 0 ]; then
    echo "tui_tmux: no summary (\"$pattern\") after ${timeout_s}s or the command exited" >&2
fi
exit "$status"
