package saga_test

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/eventstore"
	"github.com/example/sagasuite/platform/inbox"
	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/services/inventory/inventoryevents"
	"github.com/example/sagasuite/services/orders/internal/announce"
	"github.com/example/sagasuite/services/orders/internal/order"
	"github.com/example/sagasuite/services/orders/internal/ordersdb"
	"github.com/example/sagasuite/services/orders/internal/saga"
	"github.com/example/sagasuite/services/orders/orderevents"
	"github.com/example/sagasuite/services/payments/paymentevents"
)

// An authorized payment does not confirm an order: inventory may have let
// its reservation expire meanwhile. Inventory's commit does. When the
// reservation expired first, inventory.expired cancels the order however
// late the payment's authorization comes.
func TestAnOrderIsConfirmedByTheCommitNotThePayment(t *testing.T) {
	pool := postgrestest.Pool(t, map[string]fs.FS{"orders": ordersdb.Migrations(), "eventstore": eventstore.Migrations(),
		"outbox": outbox.Migrations(), "inbox": inbox.Migrations()})
	repo, err := ordersdb.New(pool, observe.Discard(), ordersdb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := saga.NewMetrics(nil, observe.Discard())
	in, err := inbox.Setup(context.Background(), pool, observe.Discard(), inbox.Config{Consumer: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	handle := in.Handler(saga.New(repo, metrics).Routes())
	ctx := context.Background()
	place := func(id string) {
		placed := order.Place(id, "c", []order.Item{{SKU: "A", Quantity: 1, UnitPriceCents: 100}}, "4242", time.Now().UTC())
		msg, _ := announce.Placed(placed, orderevents.Payment{Token: "tok", CardLast4: "4242"})
		if _, _, err := repo.Create(ctx, placed, nil, nil, msg); err != nil {
			t.Fatal(err)
		}
	}
	deliver := func(id, typ, topic string, data any) {
		ev, _ := kafka.NewEvent(typ, "/test", id, data)
		if err := handle.Handle(ctx, kafka.Message{Event: ev, Topic: topic}); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
	}
	status := func(id string) order.Order {
		o, err := repo.Current(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}

	place("paid")
	deliver("paid", paymentevents.Authorized, paymentevents.Topic, paymentevents.PaymentOutcome{OrderID: "paid", PaymentID: "p"})
	if o := status("paid"); o.Status != order.Pending {
		t.Fatalf("after payments.authorized alone: %s, want PENDING until inventory commits", o.Status)
	}
	deliver("paid", inventoryevents.Committed, inventoryevents.Topic, inventoryevents.StockCommitted{OrderID: "paid"})
	if o := status("paid"); o.Status != order.Confirmed {
		t.Fatalf("after inventory.committed: %s, want CONFIRMED", o.Status)
	}

	place("late")
	deliver("late", inventoryevents.Expired, inventoryevents.Topic, inventoryevents.StockReleased{OrderID: "late", Reason: inventoryevents.ReasonReservationExpired})
	deliver("late", paymentevents.Authorized, paymentevents.Topic, paymentevents.PaymentOutcome{OrderID: "late", PaymentID: "p"})
	if o := status("late"); o.Status != order.Cancelled || o.Reason != order.ReasonSagaTimeout {
		t.Fatalf("reservation expired, then paid: %s %s, want CANCELLED saga_timeout (payments refunds it)", o.Status, o.Reason)
	}
}
