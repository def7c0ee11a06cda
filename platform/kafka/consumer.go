package kafka

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/lifecycle"
	"github.com/example/sagasuite/platform/observe"
)

// Handler processes one message. Returning nil commits it; an error wrapped
// with Permanent dead-letters it; any other error retries it.
// Handlers must be idempotent: a message can arrive more than once.
type Handler interface {
	Handle(ctx context.Context, m Message) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m Message) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, m Message) error { return f(ctx, m) }

// StartOffset is where a consumer group with no committed offsets (a new
// service, a new group name) starts reading.
type StartOffset int

const (
	// StartEarliest reads everything the topics still retain: a new
	// participant in a saga misses nothing written before its first start.
	StartEarliest StartOffset = iota
	// StartLatest reads only what is written after the group first joins:
	// a new service on a busy topic does not replay its whole retention
	// (7 days here) on its first deploy.
	StartLatest
)

// ConsumerConfig configures a Consumer. Brokers, Group and Topics are
// required.
type ConsumerConfig struct {
	Brokers []string
	Group   string   // consumer group ID; also the messaging.consumer.group.name
	Topics  []string // topics consumed by the group
	// Sources names, for each topic, the ce_source its one producer
	// writes (orderevents.Topic: orderevents.Source). A message with any
	// other source is dead-lettered before a handler sees it: the inbox
	// dispatches on ce_type, and without this check any client of the
	// broker could assert any event type (an orders.placed on
	// payments.events, say). Required for every topic.
	Sources map[string]string
	// StartAt is where a group without committed offsets begins;
	// committed offsets always win.
	StartAt StartOffset
	// Policies wrap the handler, the first outermost: typically
	// Retry(…), then DeadLetter(…). Without a policy a failed message
	// ends the group session and is delivered again after the rejoin:
	// nothing is ever skipped silently.
	Policies []Middleware
	// SessionTimeout is how long a dead consumer keeps its partitions;
	// 0 means 10 s (kfake refuses less than 6 s by default).
	SessionTimeout time.Duration
	// Workers handle messages in parallel, each key always on the same
	// worker (so in order); 0 means 1.
	Workers int
	// Batch, when set, handles the messages waiting for a worker (up to
	// MaxBatch) in one call; a failed batch is handled again one message
	// at a time through the policies and the handler (batch.go).
	Batch BatchHandler
	// MaxBatch caps a batch; 0 means 32.
	MaxBatch int
	// Gather is how long a busy worker (its previous batch was full: the
	// messages pile up) waits for more once its queue is empty before it
	// hands a batch over; 0 means 1 ms, a negative value never waits. A
	// worker that keeps up never waits: waiting whenever a batch held two
	// messages cost 12 ms of saga p50 at 100 orders/s for 7 % fewer
	// statements (docs/performance.md).
	Gather time.Duration
	// CommitInterval is how long handled messages wait for others to
	// commit with, in one request; 0 means 100 ms, a negative value
	// commits as soon as a message is handled. A message handled but not
	// yet committed when the consumer dies is delivered again, and the
	// inbox skips it: a longer interval costs a few more redeliveries
	// after a crash, a shorter one a commit request a message (at 150
	// orders/s, 2 – 4 % of each service's CPU and the broker's work).
	CommitInterval time.Duration
}

// Consumer runs a consumer group with a bounded number of workers:
// messages with the same key are handled one at a time, in the order they
// were written. What happens to a failing message is up to its policies
// (policy.go); the consumer itself owns fetching, ordering, commits
// (tracker.go), pausing and the telemetry of each delivery.
type Consumer struct {
	cfg       ConsumerConfig
	h         Handler // with the policies
	obs       observers
	paused    atomic.Bool
	assigned  atomic.Bool // the group gave this member its partitions
	lag       lagGauge
	consumed  metric.Int64Counter
	processed metric.Float64Histogram
}

// NewConsumer returns a consumer that passes every message to h, wrapped
// in cfg.Policies, and reports each delivery through tel.
func NewConsumer(h Handler, tel observe.Bundle, cfg ConsumerConfig) (*Consumer, error) {
	errs := []error{tel.Check()}
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if cfg.Group == "" {
		errs = append(errs, errors.New("no group"))
	}
	if len(cfg.Topics) == 0 {
		errs = append(errs, errors.New("no topics"))
	}
	for _, topic := range cfg.Topics {
		if cfg.Sources[topic] == "" {
			errs = append(errs, fmt.Errorf("no source for topic %s: name the ce_source of its producer", topic))
		}
	}
	if h == nil {
		errs = append(errs, errors.New("no handler"))
	}
	if cfg.StartAt != StartEarliest && cfg.StartAt != StartLatest {
		errs = append(errs, fmt.Errorf("start offset %d", cfg.StartAt))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 32
	}
	if cfg.Gather == 0 {
		cfg.Gather = time.Millisecond
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = 100 * time.Millisecond
	}
	c := &Consumer{cfg: cfg, h: Chain(h, cfg.Policies...), obs: build(tel)}
	var err error
	if c.consumed, err = consumedCounter(c.obs.meter); err != nil {
		return nil, err
	}
	if err := registerLag(c.obs.meter, cfg.Group, &c.lag); err != nil {
		return nil, err
	}
	if c.processed, err = c.obs.meter.Float64Histogram("messaging.process.duration",
		metric.WithDescription("Time from a message's hand-over to a worker until it was handled or dead-lettered, retries included."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)); err != nil {
		return nil, err
	}
	return c, nil
}

// Lifecycle: degradable readiness (its partitions assigned once), run
// beside the server.
func (c *Consumer) Lifecycle() lifecycle.Parts {
	return lifecycle.Parts{Ready: c.Ready, Degradable: true, Run: c.Run}
}

// Run consumes until ctx is done, then leaves the group and returns nil.
// A broker that goes away does not end it: it reports not ready, waits
// (backing off from 0.5 s to 2 s: a broker back from an outage is met
// within 2 s, and a group join costs the broker little) and joins the
// group again, resuming from the committed offsets, so a service outlives
// a broker restart.
//
// Messages go to Workers goroutines by key, so one key's messages are
// handled one at a time and in order while different keys proceed in
// parallel. A partition's offset is committed only up to the last message
// before which every message of that partition was handled.
func (c *Consumer) Run(ctx context.Context) error {
	lctx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	go c.lag.follow(lctx, c.cfg.Brokers, c.cfg.Group, c.cfg.Topics, 5*time.Second)
	backoff := 500 * time.Millisecond
	for {
		began := time.Now()
		err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		c.assigned.Store(false)
		if time.Since(began) > time.Minute {
			backoff = 500 * time.Millisecond // it had worked for a while: a new failure
		}
		c.obs.log.WarnContext(ctx, "kafka consumer stopped, joining again", "group", c.cfg.Group, "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// session is one membership of the group: a reader, its workers and its
// committer, until ctx ends (nil), the reader fails or a message fails
// past its policies.
func (c *Consumer) session(parent context.Context) error {
	ctx, fail := context.WithCancelCause(parent)
	defer fail(nil)
	start := kafkago.FirstOffset
	if c.cfg.StartAt == StartLatest {
		start = kafkago.LastOffset
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:           c.cfg.Brokers,
		GroupID:           c.cfg.Group,
		GroupTopics:       c.cfg.Topics,
		StartOffset:       start,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		MaxWait:           500 * time.Millisecond,
		ReadBatchTimeout:  time.Second,
		SessionTimeout:    c.cfg.SessionTimeout,
		HeartbeatInterval: c.cfg.SessionTimeout / 5,
		RebalanceTimeout:  c.cfg.SessionTimeout,
		JoinGroupBackoff:  500 * time.Millisecond,
		CommitInterval:    0, // commit synchronously, after the handler
		// kafka-go says when the group assigned partitions only in its
		// log: that line is what Ready waits for.
		Logger: kafkago.LoggerFunc(func(msg string, _ ...any) {
			if strings.HasPrefix(msg, "subscribed to topics and partitions") {
				c.assigned.Store(true)
			}
		}),
		ErrorLogger: kafkago.LoggerFunc(func(msg string, args ...any) {
			c.obs.log.Warn("kafka reader: "+fmt.Sprintf(msg, args...), "group", c.cfg.Group)
		}),
	})
	defer r.Close()

	track := newTracker()
	completed := make(chan kafkago.Message, 64)
	committerDone := make(chan struct{})
	go func() { // the only goroutine that commits
		defer close(committerDone)
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		// Handled messages are committed together, a partition's highest
		// handled prefix at a time, in one request per CommitInterval
		// at most, and at once when the session ends.
		ready := map[string]kafkago.Message{}
		flush := func() {
			if len(ready) == 0 {
				return
			}
			batch := make([]kafkago.Message, 0, len(ready))
			for _, m := range ready {
				batch = append(batch, m)
			}
			clear(ready)
			if err := r.CommitMessages(cctx, batch...); err != nil {
				// Not fatal: the messages are redelivered and deduplicated.
				c.obs.log.Warn("commit offsets", "partitions", len(batch), "error", err)
			}
		}
		note := func(m kafkago.Message) {
			if commit, ok := track.complete(m); ok {
				ready[key(commit)] = commit
			}
		}
		for m := range completed {
			note(m)
			collect(completed, c.cfg.CommitInterval, note)
			flush()
		}
		flush()
	}()

	queues := make([]chan kafkago.Message, c.cfg.Workers)
	var workers sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan kafkago.Message, max(16, c.cfg.MaxBatch))
		workers.Add(1)
		go func(q <-chan kafkago.Message) {
			defer workers.Done()
			busy := false // the previous batch was full: messages are piling up
			for km := range q {
				gather := time.Duration(0)
				if busy && c.cfg.Batch != nil {
					gather = c.cfg.Gather
				}
				batch := take(km, q, c.cfg.MaxBatch, gather)
				busy = len(batch) == c.cfg.MaxBatch
				if ctx.Err() != nil {
					continue // the session is ending: left uncommitted, redelivered
				}
				if err := c.deliverBatch(ctx, batch); err != nil {
					fail(err)
					continue
				}
				for _, m := range batch {
					completed <- m
				}
			}
		}(queues[i])
	}
	stop := func() {
		for _, q := range queues {
			close(q)
		}
		workers.Wait()
		close(completed)
		<-committerDone
	}

	// ended says why the session stops: nil when the consumer is told to
	// stop, the failure when a message failed past its policies.
	ended := func() error {
		stop()
		if parent.Err() != nil {
			return nil
		}
		return context.Cause(ctx)
	}
	for {
		if err := c.waitWhilePaused(ctx); err != nil {
			return ended()
		}
		km, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ended()
			}
			stop()
			return fmt.Errorf("consume %v as %s: %w", c.cfg.Topics, c.cfg.Group, err)
		}
		// A fetch that was under way when Pause came is held, not handled.
		if err := c.waitWhilePaused(ctx); err != nil {
			return ended()
		}
		track.fetched(km)
		select {
		case queues[c.worker(km)] <- km:
		case <-ctx.Done():
			return ended()
		}
	}
}

// collect passes what arrives on completed to note for up to interval,
// and returns early once completed is closed: the session is ending.
// Without an interval it returns at once, having taken at most what was
// already there.
func collect(completed <-chan kafkago.Message, interval time.Duration, note func(kafkago.Message)) {
	until := closedNow
	if interval > 0 {
		t := time.NewTimer(interval)
		defer t.Stop()
		until = t.C
	}
	for {
		select {
		case m, ok := <-completed:
			if !ok {
				return
			}
			note(m)
		case <-until:
			return
		}
	}
}

// closedNow is a channel that is always ready: a deadline already past.
var closedNow = func() <-chan time.Time {
	ch := make(chan time.Time)
	close(ch)
	return ch
}()

// worker picks the goroutine for km: by key, so a key's messages stay in
// order; by partition for messages without a key.
func (c *Consumer) worker(km kafkago.Message) int {
	h := fnv.New32a()
	if len(km.Key) > 0 {
		_, _ = h.Write(km.Key)
	} else {
		_, _ = fmt.Fprintf(h, "%s/%d", km.Topic, km.Partition)
	}
	return int(h.Sum32() % uint32(c.cfg.Workers)) // #nosec G115 -- Workers is checked to be within 1..256
}

// ErrNotAssigned means the consumer has not yet joined its group and been
// given its partitions: messages sent now would wait for the rebalance.
var ErrNotAssigned = errors.New("kafka consumer: not yet assigned its partitions")

// Ready is a readiness check: nil once the group has assigned this member
// its partitions.
func (c *Consumer) Ready(context.Context) error {
	if !c.assigned.Load() {
		return fmt.Errorf("group %s: %w", c.cfg.Group, ErrNotAssigned)
	}
	return nil
}

// Pause stops handing out new messages until Resume; messages already
// with a worker are finished. The group membership is kept: partitions stay assigned.
func (c *Consumer) Pause() { c.paused.Store(true) }

// Resume undoes Pause.
func (c *Consumer) Resume() { c.paused.Store(false) }

// Paused reports whether consumption is paused.
func (c *Consumer) Paused() bool { return c.paused.Load() }

func (c *Consumer) waitWhilePaused(ctx context.Context) error {
	for c.paused.Load() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// deliver hands km to the handler and its policies once, in a consumer
// span that continues the producer's trace. A nil error means km is done
// (handled, or parked by a policy) and may be committed; an error means
// it failed past every policy and the session must end without
// committing it.
func (c *Consumer) deliver(ctx context.Context, km kafkago.Message) error {
	msg, decodeErr := c.decode(km)
	ctx, span := c.startSpan(ctx, km, msg)
	defer span.End()
	msg.Group, msg.Attempt = c.cfg.Group, 1
	attrs := metric.WithAttributes(semconvTopicGroup(km.Topic, c.cfg.Group)...)
	span.SetAttributes(attribute.Int("messaging.delivery_attempt", 1)) // Retry counts on
	h := c.h
	if decodeErr != nil { // not a CloudEvent, or not its producer's: only the policies see it
		h = Chain(HandlerFunc(func(context.Context, Message) error { return Permanent(decodeErr) }), c.cfg.Policies...)
	}
	start := time.Now()
	err := h.Handle(ctx, msg)
	took := time.Since(start)
	outcome := "ok"
	if IsDeadLettered(err) { // parked by a policy: done
		outcome, err = "dead_letter", nil
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		if ctx.Err() != nil {
			return err // stopping: redelivered after the restart
		}
		c.obs.log.ErrorContext(ctx, "message failed past its policies, rejoining the group to receive it again",
			"topic", km.Topic, "type", msg.Type, "id", msg.ID, "error", err)
		return fmt.Errorf("message %s/%d@%d: %w", km.Topic, km.Partition, km.Offset, err)
	}
	c.processed.Record(ctx, took.Seconds(), attrs, metric.WithAttributes(attribute.String("outcome", outcome)))
	c.consumed.Add(ctx, 1, attrs, metric.WithAttributes(attribute.String("outcome", outcome)))
	if outcome == "ok" { // the boundary's log line (debug: one per message)
		c.obs.log.DebugContext(ctx, "message handled", "topic", km.Topic, "type", msg.Type, "id", msg.ID, "duration", took)
	}
	return nil
}

// startSpan starts km's consumer span, continuing its producer's trace.
func (c *Consumer) startSpan(ctx context.Context, km kafkago.Message, msg Message) (context.Context, trace.Span) {
	parent := c.obs.propagator.Extract(ctx, headerCarrier{&km.Headers})
	return c.obs.tracer.Start(parent, "process "+km.Topic, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingDestinationName(km.Topic),
			semconv.MessagingConsumerGroupName(c.cfg.Group),
			semconv.MessagingOperationName("process"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationPartitionID(strconv.Itoa(km.Partition)),
			semconv.MessagingKafkaOffset(int(km.Offset)),
			semconv.MessagingKafkaMessageKey(string(km.Key)),
			semconv.MessagingMessageID(msg.ID),
			semconv.MessagingMessageBodySize(len(km.Value)),
			attribute.String("cloudevents.event_type", msg.Type),
		))
}

// consumedCounter is messaging.client.consumed.messages on meter: the
// consumer counts what it handled or saw dead-lettered, Retry each failed
// attempt, on the same instrument of the same scope.
func consumedCounter(meter metric.Meter) (metric.Int64Counter, error) {
	return meter.Int64Counter("messaging.client.consumed.messages",
		metric.WithDescription("Messages consumed, by topic and outcome (ok, retry: one per failed attempt, dead_letter)."), metric.WithUnit("{message}"))
}

// semconvTopicGroup is the attributes of the consumer's metrics.
func semconvTopicGroup(topic, group string) []attribute.KeyValue {
	return []attribute.KeyValue{semconv.MessagingSystemKafka, semconv.MessagingDestinationName(topic),
		semconv.MessagingConsumerGroupName(group)}
}

// decode reads km as a CloudEvent from the producer of its topic
// (ConsumerConfig.Sources); an error is permanent.
func (c *Consumer) decode(km kafkago.Message) (Message, error) {
	msg, err := decode(km)
	if want := c.cfg.Sources[km.Topic]; err == nil && msg.Source != want {
		err = fmt.Errorf("ce_source %q on %s, whose producer is %q: refused as forged", msg.Source, km.Topic, want)
	}
	return msg, err
}
