#!/bin/sh
# $1 >= 1 on upgrade: restart the running workers on the new binary.
# The inferops user and /var/lib/inferops are kept (offsets, state).
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
	if [ "${1:-0}" -ge 1 ]; then
		systemctl try-restart 'inferops-worker@*.service' >/dev/null 2>&1 || :
	fi
fi
exit 0
