package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Fault kinds, each one of the things the suite must survive.
const (
	killOrders    = "kill -9 orders"
	killPayments  = "kill -9 payments"
	killInventory = "kill -9 an inventory replica"
	killPSP       = "kill -9 psp"
	killBroker    = "kill -9 the broker"
	killEtcd      = "kill -9 etcd"
	pauseConsume  = "pause consumption"
	pspErrors     = "psp error storm"
	pspLatency    = "psp latency"
	duplicates    = "duplicated deliveries"
	poison        = "poison message"
)

var kinds = []string{killOrders, killPayments, killInventory, killPSP, killBroker, killEtcd, pauseConsume, pspErrors,
	pspLatency, duplicates, poison}

// fault is one scheduled fault and what became of it.
type fault struct {
	At       string `json:"at"` // offset into the load
	Kind     string `json:"kind"`
	Target   string `json:"target,omitempty"`
	Held     string `json:"held,omitempty"`     // how long the fault lasted
	Recovery string `json:"recovery,omitempty"` // restart to ready again
	Detail   string `json:"detail,omitempty"`
	Error    string `json:"error,omitempty"`
	at       time.Duration
}

// plan spreads faults over the run: every kind once, in a seeded order,
// then seeded picks; one per interval.
func plan(rng *rand.Rand, duration, every time.Duration) []fault {
	n := int(duration/every) - 1 // the last interval stays quiet
	order := append([]string(nil), kinds...)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	var out []fault
	for i := range max(0, n) {
		kind := order[i%len(order)]
		if i >= len(order) {
			kind = kinds[rng.IntN(len(kinds))]
		}
		at := time.Duration(i+1)*every + time.Duration(rng.Int64N(int64(every/4)))
		f := fault{Kind: kind, at: at, At: at.Round(time.Millisecond).String()}
		if kind == killInventory {
			f.Target = fmt.Sprintf("inventory-%d", 1+rng.IntN(2))
		}
		out = append(out, f)
	}
	return out
}

// inject runs the schedule until window ends; each fault heals itself
// before the next (under ctx, which may outlast the window).
func inject(ctx, window context.Context, s *suite, schedule []fault, log io.Writer) []fault {
	start := time.Now()
	var done []fault
	for _, f := range schedule {
		select {
		case <-window.Done():
			return done
		case <-time.After(time.Until(start.Add(f.at))):
		}
		began := time.Now()
		err := s.apply(ctx, &f)
		f.Held = time.Since(began).Round(time.Millisecond).String()
		if err != nil {
			f.Error = err.Error()
		}
		fmt.Fprintf(log, "chaos: %7s %-30s %-12s held %-8s recovery %-8s %s%s\n", f.At, f.Kind, f.Target, f.Held, f.Recovery, f.Detail, f.Error)
		done = append(done, f)
	}
	return done
}

func (s *suite) apply(ctx context.Context, f *fault) error {
	kill := func(name string) error {
		p := s.byName[name]
		f.Target = name
		p.kill9()
		time.Sleep(time.Second)
		took, err := s.restart(ctx, p)
		f.Recovery = took.Round(time.Millisecond).String()
		return err
	}
	hold := func(set, reset func() error) error {
		if err := set(); err != nil {
			return err
		}
		time.Sleep(4 * time.Second)
		return reset()
	}
	switch f.Kind {
	case killOrders:
		return kill("orders")
	case killPayments:
		return kill("payments")
	case killInventory:
		return kill(f.Target)
	case killPSP:
		return kill("psp")
	case killBroker:
		return kill("kafka")
	case killEtcd:
		return kill("etcd")
	case pauseConsume:
		f.Target = "inventory"
		set := func(paused bool) func() error {
			return func() error {
				for _, n := range []string{"inventory-1", "inventory-2"} {
					if err := s.adminPut(s.byName[n], "/admin/consumption", fmt.Sprintf(`{"paused":%v}`, paused)); err != nil {
						return err
					}
				}
				return nil
			}
		}
		return hold(set(true), set(false))
	case pspErrors, pspLatency:
		f.Target = "psp"
		on := `{"latency_ms":0,"error_rate":1.0}`
		if f.Kind == pspLatency {
			on = `{"latency_ms":1500,"error_rate":0}`
		}
		psp := s.byName["psp"]
		return hold(func() error { return s.adminPut(psp, "/admin/faults", on) },
			func() error { return s.adminPut(psp, "/admin/faults", `{"latency_ms":0,"error_rate":0}`) })
	case duplicates:
		n, err := s.duplicate(ctx, []string{"orders.events", "inventory.events", "payments.events"}, 30)
		f.Detail = fmt.Sprintf("%d messages delivered again", n)
		return err
	case poison:
		f.Target = "payments.events"
		id, err := s.poison(ctx, "payments.events")
		f.Detail = "ce_id " + id
		return err
	}
	return fmt.Errorf("unknown fault %q", f.Kind)
}

// duplicate writes up to n already-delivered messages of each topic
// again, byte for byte (same ce_id): consumers must apply each once.
func (s *suite) duplicate(ctx context.Context, topics []string, n int) (int, error) {
	w := &kafkago.Writer{Addr: kafkago.TCP(strings.Split(s.brokers, ",")...), Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll,
		BatchTimeout: time.Millisecond}
	defer w.Close()
	total := 0
	for _, topic := range topics {
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: strings.Split(s.brokers, ","), Topic: topic, Partition: 0, MaxWait: 200 * time.Millisecond})
		var msgs []kafkago.Message
		for len(msgs) < n {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			m, err := r.ReadMessage(rctx)
			cancel()
			if err != nil {
				break // read what there is
			}
			msgs = append(msgs, kafkago.Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: m.Headers})
		}
		_ = r.Close()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return total, fmt.Errorf("duplicate %s: %w", topic, err)
		}
		total += len(msgs)
	}
	return total, nil
}

// poisonIDs are the ce_ids of the poison messages injected.
var poisonIDs = map[string]bool{}

// poison writes a message no consumer can ever process (a payments event
// whose data is not JSON): it must reach the DLQ of every group that
// reads the topic, and consumption must go on.
func (s *suite) poison(ctx context.Context, topic string) (string, error) {
	id := fmt.Sprintf("chaos-poison-%d", time.Now().UnixNano())
	poisonIDs[id] = true
	w := &kafkago.Writer{Addr: kafkago.TCP(strings.Split(s.brokers, ",")...), RequiredAcks: kafkago.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	headers := map[string]string{"ce_specversion": "1.0", "ce_id": id, "ce_type": "payments.authorized", "ce_source": "/chaos",
		"ce_time": time.Now().UTC().Format(time.RFC3339Nano), "content-type": "application/json"}
	var hs []kafkago.Header
	for k, v := range headers {
		hs = append(hs, kafkago.Header{Key: k, Value: []byte(v)})
	}
	return id, w.WriteMessages(ctx, kafkago.Message{Topic: topic, Key: []byte("poison"), Value: []byte(`{"order_id": `), Headers: hs})
}

// deadLetters reads every dead-letter topic to its end.
func (s *suite) deadLetters(ctx context.Context) ([]deadLetter, error) {
	conn, err := kafkago.DialContext(ctx, "tcp", strings.Split(s.brokers, ",")[0])
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var out []deadLetter
	for _, topic := range []string{"orders.events.dlq", "inventory.events.dlq", "payments.events.dlq"} {
		parts, err := conn.ReadPartitions(topic)
		if err != nil {
			return nil, fmt.Errorf("partitions of %s: %w", topic, err)
		}
		for _, p := range parts {
			pc, err := kafkago.DialLeader(ctx, "tcp", strings.Split(s.brokers, ",")[0], topic, p.ID)
			if err != nil {
				return nil, err
			}
			last, err := pc.ReadLastOffset()
			_ = pc.Close()
			if err != nil || last == 0 {
				continue
			}
			r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: strings.Split(s.brokers, ","), Topic: topic, Partition: p.ID, MaxWait: 200 * time.Millisecond})
			for {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				m, err := r.ReadMessage(rctx)
				cancel()
				if err != nil {
					break
				}
				d := deadLetter{Topic: topic}
				for _, h := range m.Headers {
					switch h.Key {
					case "ce_id":
						d.ID = string(h.Value)
					case "dlq_group":
						d.Group = string(h.Value)
					case "dlq_reason":
						d.Reason = string(h.Value)
					}
				}
				d.Injected = poisonIDs[d.ID]
				out = append(out, d)
				if m.Offset+1 >= last {
					break
				}
			}
			_ = r.Close()
		}
	}
	return out, nil
}

type deadLetter struct {
	Topic    string `json:"topic"`
	Group    string `json:"group"`
	ID       string `json:"ce_id"`
	Reason   string `json:"reason"`
	Injected bool   `json:"injected_poison"`
}

func (d deadLetter) String() string {
	b, _ := json.Marshal(d)
	return string(b)
}
