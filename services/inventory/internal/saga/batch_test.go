package saga_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/services/orders/orderevents"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

// Batches of reservations and commits run concurrently on the same
// products, one worker's batches taking them in the opposite order to the
// next worker's: with the batch's locks taken first and in SKU order
// (Handlers.Lock) no batch fails (a deadlock would fail one), and every
// unit of stock is accounted for. Without Lock, batches deadlock here.
func TestBatchesOnSharedProductsDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	_, store, h, in := stocked(t, 1000)
	b := in.BatchLocking(h.Routes(), h.Lock)
	skus := []string{"SKU-0001", "SKU-0002", "SKU-0003", "SKU-0004"}
	message := func(typ, topic, order string, data any) kafka.Message {
		ev, err := kafka.NewEvent(typ, "/test", order, data)
		if err != nil {
			t.Fatal(err)
		}
		return kafka.Message{Event: ev, Topic: topic}
	}
	run := func(msgs []kafka.Message) error {
		ctxs := make([]context.Context, len(msgs))
		for i := range ctxs {
			ctxs[i] = ctx
		}
		return b.HandleBatch(ctxs, msgs)
	}
	const workers, rounds, perBatch = 4, 15, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*2)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				var placed, paid []kafka.Message
				for i := range perBatch {
					order := fmt.Sprintf("o-%d-%d-%d", w, r, i)
					// Half the products each; a worker's batch takes the
					// halves in the opposite order to the next worker's.
					half := skus[:2]
					if (w+i)%2 == 1 {
						half = skus[2:]
					}
					var items []orderevents.Item
					for _, sku := range half {
						items = append(items, orderevents.Item{SKU: sku, Quantity: 1, UnitPriceCents: 100})
					}
					placed = append(placed, message(orderevents.Placed, orderevents.Topic, order, orderevents.OrderPlaced{OrderID: order,
						CustomerID: "c", TotalCents: 200, Currency: "EUR", Items: items, Payment: orderevents.Payment{Token: "t", CardLast4: "4242"}}))
					paid = append(paid, message(paymentevents.Authorized, paymentevents.Topic, order,
						paymentevents.PaymentOutcome{OrderID: order, PaymentID: "p-" + order, AmountCents: 200}))
				}
				errs <- run(placed)
				errs <- run(paid)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a batch failed: %v", err)
		}
	}
	sold := int64(workers * rounds * perBatch / 2)
	for _, sku := range skus {
		p, err := store.Product(ctx, sku)
		if err != nil {
			t.Fatal(err)
		}
		if p.Reserved != 0 || p.Committed != sold {
			t.Errorf("%s: %d reserved, %d committed; want 0 and %d", sku, p.Reserved, p.Committed, sold)
		}
	}
}
