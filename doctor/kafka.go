package doctor

import (
	"context"
	"fmt"
	"strings"
)

func kafkaCheck(id, name string) Check {
	return Check{Section: SectionKafka, ID: id, Name: name}
}

// startKafkaFix is how to get a broker when none answers.
func (o Options) startKafkaFix() string {
	if o.embeddedKafka {
		return "no --brokers given, so doctor checked the embedded default " + DefaultKafka +
			": start it with 'make run' or 'inferops serve', or pass --brokers host:9092[,host:9092...]"
	}
	return "is Kafka running there? check --brokers, the listeners/advertised.listeners in server.properties, and firewalls (TCP " +
		portsOf(o.Kafka.Brokers) + ")"
}

func portsOf(addrs []string) string {
	seen := map[string]bool{}
	var ps []string
	for _, a := range addrs {
		if i := strings.LastIndexByte(a, ':'); i >= 0 && !seen[a[i+1:]] {
			seen[a[i+1:]] = true
			ps = append(ps, a[i+1:])
		}
	}
	return strings.Join(ps, ",")
}

// CheckKafka runs the cluster checks against o.Kafka within ctx.
func CheckKafka(ctx context.Context, o Options) []Check {
	reach := kafkaCheck("kafka.reachable", "brokers reachable")
	reach.Want = "every bootstrap broker accepts TCP"
	reach.Why = "workers, producers and the console all bootstrap from these addresses"
	ok, failed := dialAll(ctx, o.Kafka.Brokers)
	switch {
	case len(ok) == 0:
		reach.Status = Fail
		reach.Seen = unreachable(failed, o.Kafka.Brokers)
		reach.Fix = o.startKafkaFix()
		return []Check{reach}
	case len(failed) > 0:
		reach.Status = Warn
		reach.Seen = fmt.Sprintf("%d of %d answer; down: %s", len(ok), len(o.Kafka.Brokers), unreachable(failed, o.Kafka.Brokers))
		reach.Fix = "remove dead addresses from --brokers, or bring those brokers back"
	default:
		reach.Status = Pass
		reach.Seen = strings.Join(ok, ", ")
	}
	return []Check{reach}
}
