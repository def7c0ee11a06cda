package kafka

import (
	"strconv"
	"sync"

	kafkago "github.com/segmentio/kafka-go"
)

// The commit tracker: workers finish messages out of order (different
// keys run in parallel), but a partition's committed offset must never
// pass a message still in a worker, or a crash would skip it.

// tracker knows, per partition, which fetched offsets are handled, so that
// commits never pass a message still in a worker.
type tracker struct {
	mu    sync.Mutex
	parts map[string]*partition
}

type partition struct {
	inFlight []int64 // fetched offsets, in fetch order
	done     map[int64]kafkago.Message
}

func newTracker() *tracker { return &tracker{parts: map[string]*partition{}} }

func key(m kafkago.Message) string { return m.Topic + "/" + strconv.Itoa(m.Partition) }

func (t *tracker) fetched(m kafkago.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[key(m)]
	if p == nil {
		p = &partition{done: map[int64]kafkago.Message{}}
		t.parts[key(m)] = p
	}
	p.inFlight = append(p.inFlight, m.Offset)
}

// complete marks m handled and returns the message to commit: the last of
// the partition's handled prefix, if it moved.
func (t *tracker) complete(m kafkago.Message) (kafkago.Message, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[key(m)]
	if p == nil {
		return m, false
	}
	p.done[m.Offset] = m
	var last kafkago.Message
	moved := false
	for len(p.inFlight) > 0 {
		d, ok := p.done[p.inFlight[0]]
		if !ok {
			break
		}
		delete(p.done, p.inFlight[0])
		p.inFlight = p.inFlight[1:]
		last, moved = d, true
	}
	return last, moved
}
