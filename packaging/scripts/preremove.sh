#!/bin/sh
# $1 = 0 on erase (not on upgrade): stop and disable the worker.
if [ "${1:-0}" -eq 0 ] && [ -d /run/systemd/system ]; then
	systemctl --no-reload disable --now inferops-worker.service >/dev/null 2>&1 || :
fi
exit 0
