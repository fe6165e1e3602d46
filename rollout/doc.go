// Package rollout moves a consumer group's fleet from one model version to
// another gradually: a share of records by key to the candidate, steps held
// for a time, gates on the candidate's latency, errors and output shift
// against the baseline, an automatic rollback on any breach, an optional
// shadow, and a warm-up before the candidate sees traffic.
//
// It is built on the fleet (package fleet): the plan and the current step
// live in the group's desired state on the control topic, so every
// instance on every host applies the same split and any process can
// resume or abort it; the comparison is the exact merge of the instances'
// telemetry (fleet.View.Rollout); the driver's heartbeat and its last
// decision (Status) go to the fleet topic, so `inferops rollout status`
// and every console show the gates as the driver judged them.
//
//	plan, _ := rollout.Options{Steps: "1,10,50,100", Hold: time.Minute}.Plan()
//	d := rollout.NewDriver(ctrl, tfs, rollout.DriverConfig{...})
//	res, err := d.Start(ctx, "2", plan)   // runs until promoted, rolled back or ctx ends
//	st := rollout.StatusOf(ctrl.View())   // what status and the console show
//
// Only the driver advances a step, and only after it has watched the
// whole hold with every gate passing: a driver that dies leaves the
// fleet at its step (the heartbeat goes stale and Status says so) until
// `inferops rollout resume` or `abort`.
package rollout
