#!/bin/sh
# $1 = 0 on erase (not on upgrade): stop and disable every worker instance
# (inferops-worker@NAME.service); disable takes no pattern, so each by name.
if [ "${1:-0}" -eq 0 ] && [ -d /run/systemd/system ]; then
	for u in $(systemctl list-units --all --plain --no-legend 'inferops-worker@*.service' 2>/dev/null | awk '{print $1}') \
		$(systemctl list-unit-files --plain --no-legend 'inferops-worker@*.service' 2>/dev/null | awk '$1 != "inferops-worker@.service" {print $1}'); do
		systemctl --no-reload disable --now "$u" >/dev/null 2>&1 || :
	done
fi
exit 0
