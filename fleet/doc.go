// Package fleet is every worker pool of a consumer group, on every host,
// seen and steered through Kafka: headless `inferops worker` processes and
// each console's own pool are instances of it.
//
// # Topics
//
//	inferops.fleet    key = instance: a Snapshot every interval, a tombstone
//	                  on clean exit; key = event/...: fleet events
//	inferops.control  key = group: the group's Desired state
//
// # In a worker process: Agent
//
//	a, _ := fleet.NewAgent(fleet.AgentConfig{Kafka: kc, Worker: cfg, TFServing: tfs, Version: v})
//	plan, err := a.Prepare(ctx) // refuses a second live process under cfg.Instance
//	plan.Configure(&cfg)        // the group's desired state: share, target
//	pool, _ := worker.NewPool(kc, tfs, cfg, log)
//	if plan.Paused { pool.Pause() }
//	pool.Start(ctx)
//	a.Run(pool, plan)           // publish and follow until
//	pool.Close(ctx); a.Close(ctx)
//
// # In a console or `inferops fleet`: Controller
//
// Open reads the fleet up to now and follows it; everything else is a
// method of the one *Controller, safe for concurrent use:
//
//	c, err := fleet.Open(ctx, fleet.ControllerConfig{Kafka: kc, Group: g, Input: in, ReadOnly: why})
//	v := c.View()                   // the merged fleet now (immutable)
//	<-c.Updated()                   // closed at the next change of View
//	ch, err := c.Scale(ctx, 9)      // total workers over the following instances
//	ch, err := c.ScaleInstance(ctx, "web-1", 3) // one instance's share; the others keep theirs
//	ch, err := c.SetTarget(ctx, "2")            // latest | N | label:NAME
//	ch, err := c.SetPaused(ctx, true)
//	ack, err := c.Wait(ctx, ch, progress)       // until every live instance applied it;
//	                                            // publishes "3/3 instances applied ... in 1.4 s"
//	a := fleet.AckOf(c.View(), ch)               // the same, without waiting
//	err := c.Publish(ctx, pipeline.Event{...})  // a fleet event every console shows
//
// A read-only controller (ReadOnly set, e.g. "--read-only") refuses every
// write with ErrReadOnly and never creates topics; DryRun computes each
// change and its spread (Change.Assignment) and writes nothing.
//
// A View has every instance (InstanceView: its latest Snapshot, State
// live/lost/duplicate, ControlState applied/pending/failed/pinned/none,
// Age), Totals over the live ones, the desired state, the recent fleet
// events, and latency merged over the live instances' windows: Predict and
// EndToEnd, and per version (Versions). Hist.Quantile, Summary and Merge
// work on the merged histograms exactly. View.Status is the same for
// tables and JSON (PrintStatus); fleettest.View builds realistic ones
// without Kafka for tests and benchmarks.
//
// DESIGN.md's "The fleet" says why it is built this way: the roster group
// (how an instance learns who is live without reading anyone's
// telemetry), the instance-name check, the record's compatibility rules
// and the measured costs.
package fleet
