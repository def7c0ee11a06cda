package kafka

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// GroupLag is how many messages a consumer group is behind, per topic and
// partition: the partition's end offset less the group's committed offset
// (a partition the group never committed counts from its first offset).
// It asks the brokers with the standard OffsetFetch and ListOffsets
// requests, so it works the same against the embedded broker and a real
// Kafka cluster.
func GroupLag(ctx context.Context, brokers []string, group string, topics []string) (map[string]map[int]int64, error) {
	spans, err := groupSpans(ctx, brokers, group, topics)
	if err != nil {
		return nil, fmt.Errorf("lag of %s: %w", group, err)
	}
	lag := map[string]map[int]int64{}
	for topic, ps := range spans {
		lag[topic] = map[int]int64{}
		for p, sp := range ps {
			lag[topic][p] = max(0, sp.end-sp.from)
		}
	}
	return lag, nil
}

// span is what a group has left to read of one partition: from its
// committed offset (or the partition's first, when it committed none) up
// to the partition's end offset now.
type span struct{ from, end int64 }

func groupSpans(ctx context.Context, brokers []string, group string, topics []string) (map[string]map[int]span, error) {
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 5 * time.Second}
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	parts := map[string][]int{}
	ends := map[string][]kafkago.OffsetRequest{}
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			parts[t.Name] = append(parts[t.Name], p.ID)
			ends[t.Name] = append(ends[t.Name], kafkago.FirstOffsetOf(p.ID), kafkago.LastOffsetOf(p.ID))
		}
	}
	committed, err := client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		return nil, fmt.Errorf("committed offsets: %w", err)
	}
	offsets, err := client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: ends})
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	out := map[string]map[int]span{}
	for topic, ps := range offsets.Topics {
		done := map[int]int64{}
		for _, c := range committed.Topics[topic] {
			done[c.Partition] = c.CommittedOffset
		}
		out[topic] = map[int]span{}
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("%s/%d: %w", topic, p.Partition, p.Error)
			}
			from, ok := done[p.Partition]
			if !ok || from < p.FirstOffset {
				from = p.FirstOffset
			}
			out[topic][p.Partition] = span{from: from, end: p.LastOffset}
		}
	}
	return out, nil
}

// lagGauge exports kafka.consumer.group.lag{group,topic,partition} from
// a GroupLag refreshed every interval by the consumer (not on scrape, so a
// slow broker never slows /metrics down).
type lagGauge struct {
	mu  sync.Mutex
	lag map[string]map[int]int64
}

func registerLag(meter metric.Meter, group string, g *lagGauge) error {
	gauge, err := meter.Int64ObservableGauge("kafka.consumer.group.lag",
		metric.WithDescription("Messages the consumer group is behind the end of each partition."), metric.WithUnit("{message}"))
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		for topic, ps := range g.lag {
			for p, n := range ps {
				o.ObserveInt64(gauge, n, metric.WithAttributes(attribute.String("group", group),
					attribute.String("topic", topic), attribute.String("partition", strconv.Itoa(p))))
			}
		}
		return nil
	}, gauge)
	return err
}

// follow refreshes the lag every interval until ctx ends.
func (g *lagGauge) follow(ctx context.Context, brokers []string, group string, topics []string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if lag, err := GroupLag(ctx, brokers, group, topics); err == nil {
			g.mu.Lock()
			g.lag = lag
			g.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
