// orderevents is the orders saga's contract for orders.events: the event types
// orders produces and their payloads. It is a module of its own with no
// requirements beyond the standard library, so a consumer requires exactly
// this contract and not the service behind it.
module github.com/example/sagasuite/services/orders/orderevents

go 1.26.0
