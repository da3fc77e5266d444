#!/usr/bin/env bash
# Run a TUI command in a detached 100x30 tmux session, wait for the run's summary, print the screen.
#
#   bench/tui_tmux.sh [command...]        default: orchestrate demo
#
# Environment: TIMEOUT (seconds to wait, default 600), PATTERN (what marks the summary,
# default "Handoff: "), WIDTH/HEIGHT (default 100x30).
# Exits 0 when the summary appeared, 1 when it did not in time (or the run failed, or the command
# exited first), 2 without tmux.
#
# The session runs on a tmux server of its own: a server started earlier (by a person or another
# run of this script) would give the command that server's environment and directory, not ours.
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
socket="tui-bench-$$"
tmux_() { tmux -L "$socket" "$@"; }

command_line=$(printf '%q ' "$@")
# Keep the pane alive after the command exits so a crash can still be captured.
tmux_ -f /dev/null new-session -d -s main -c "$PWD" -x "${WIDTH:-100}" -y "${HEIGHT:-30}" \
    "$command_line; echo '[tui_tmux: command exited with status '\$?']'; sleep 3600"
trap 'tmux_ kill-server 2>/dev/null' EXIT

deadline=$((SECONDS + timeout_s))
status=1
while [ "$SECONDS" -lt "$deadline" ]; do
    screen=$(tmux_ capture-pane -p -t main)
    if grep -qF -- "$pattern" <<<"$screen"; then
        status=0
        break
    fi
    # The summary of a run that failed or ended without a result waits for `q`: stop waiting.
    if grep -qE -- "\[tui_tmux: command exited|Run failed: |The run ended without a result" <<<"$screen"; then
        break
    fi
    sleep 0.5
done

tmux_ capture-pane -p -t main
if [ "$status" -ne 0 ]; then
    echo "tui_tmux: no summary (\"$pattern\") after ${timeout_s}s or the run ended without one" >&2
fi
exit "$status"
