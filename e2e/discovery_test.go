package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/example/sagasuite/platform/discovery"
	"github.com/example/sagasuite/platform/observe"
)

func kill9(t *testing.T, name string) {
	t.Helper()
	p := suite.procs[name]
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for p.cmd.Process.Signal(syscall.Signal(0)) == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// restart starts a killed process again and waits until the suite has
// healed: a member killed with -9 keeps its Kafka partitions until the
// group's session timeout (10 s), so wait until the group consumes every
// partition again, or later tests would see stalled sagas.
func restart(t *testing.T, name string) {
	t.Helper()
	p := suite.procs[name]
	if err := start(name, p.binary, p.env); err != nil {
		t.Fatal(err)
	}
	if err := waitReady(name, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	waitGroupStable(t, "inventory", 2)
	probe := place(t, "c-heal", "SKU-0090", 1, "4242424242424242")
	waitTerminal(t, probe.OrderID)
}

// waitGroupStable waits until the consumer group is Stable with exactly
// members members: a member killed with -9 has been evicted (after the
// session timeout) and its partitions handed to the living.
func waitGroupStable(t *testing.T, group string, members int) {
	t.Helper()
	client := &kafkago.Client{Addr: kafkago.TCP(suite.brokers...)}
	deadline := time.Now().Add(40 * time.Second)
	for {
		resp, err := client.DescribeGroups(context.Background(), &kafkago.DescribeGroupsRequest{GroupIDs: []string{group}})
		if err == nil && len(resp.Groups) == 1 && resp.Groups[0].GroupState == "Stable" && len(resp.Groups[0].Members) == members {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s not stable with %d members: %+v %v", group, members, resp, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func registered(t *testing.T) map[string]bool {
	t.Helper()
	cli, err := discovery.Dial(suite.etcd)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	r, err := discovery.NewResolver(cli, "inventory", observe.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Run(ctx) }()
	<-r.Ready()
	out := map[string]bool{}
	for _, in := range r.Instances() {
		out[in.ID] = true
	}
	return out
}

// One of two inventory replicas is killed (-9) and restarted while orders
// keep coming: it leaves discovery (its sidecar sees readiness fail), comes
// back when ready, and no POST /orders fails meanwhile.
func TestOrdersKeepFlowingWhileAReplicaDies(t *testing.T) {
	eventually(t, "both registered", func() error {
		if r := registered(t); !r["inventory-1"] || !r["inventory-2"] {
			return fmt.Errorf("registered %v", r)
		}
		return nil
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var placed, failed atomic.Int64
	var ids sync.Map
	var whyMu sync.Mutex
	var why []string // the first failures, for the report
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			status, body, err := call(http.MethodPost, suite.urls["orders"]+"/orders", orderBody("c-churn", "SKU-0080", 1, "4242424242424242"), nil)
			if err != nil || status != http.StatusAccepted {
				failed.Add(1)
				whyMu.Lock()
				if len(why) < 3 {
					why = append(why, fmt.Sprintf("%s: %d %s %v", time.Now().Format("15:04:05.000"), status, body, err))
				}
				whyMu.Unlock()
				continue
			}
			var o orderView
			_ = json.Unmarshal(body, &o)
			ids.Store(o.OrderID, true)
			placed.Add(1)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	kill9(t, "inventory-2")
	killed := time.Now()
	eventually(t, "killed replica out of rotation", func() error {
		if registered(t)["inventory-2"] {
			return fmt.Errorf("still registered")
		}
		return nil
	})
	t.Logf("killed replica left discovery after %v (lease TTL 2 s)", time.Since(killed))
	time.Sleep(time.Second)
	restart(t, "inventory-2")
	eventually(t, "restarted replica back", func() error {
		if !registered(t)["inventory-2"] {
			return fmt.Errorf("not registered")
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 || placed.Load() < 20 {
		t.Fatalf("%d orders placed, %d failed: none may fail because one replica died (killed at %s): %q",
			placed.Load(), failed.Load(), killed.Format("15:04:05.000"), why)
	}
	ids.Range(func(k, _ any) bool {
		waitTerminal(t, k.(string))
		return true
	})
	t.Logf("%d orders placed across the kill and restart, none failed", placed.Load())
}

type leaderView struct {
	InstanceID string `json:"instance_id"`
	LeaderID   string `json:"leader_id"`
	IsLeader   bool   `json:"is_leader"`
}

func leaderOf(t *testing.T, proc string) leaderView {
	t.Helper()
	var l leaderView
	getJSONWith(t, suite.urls[proc]+"/admin/leader", map[string]string{"Authorization": "Bearer " + adminToken}, &l)
	return l
}

// The expiry job runs on exactly one replica; kill -9 that leader and the
// other leads within 2×TTL and runs the job, still alone.
func TestLeaderFailover(t *testing.T) {
	scans := func(proc string) float64 { return metric(t, proc, "inventory_expiry_scans_total") }
	var leader, follower string
	eventually(t, "a leader", func() error {
		a, b := leaderOf(t, "inventory-1"), leaderOf(t, "inventory-2")
		if a.IsLeader == b.IsLeader || a.LeaderID != b.LeaderID || a.LeaderID == "" {
			return fmt.Errorf("inventory-1 %+v, inventory-2 %+v: want exactly one leader both agree on", a, b)
		}
		leader, follower = a.LeaderID, "inventory-2"
		if !a.IsLeader {
			follower = "inventory-1"
		}
		return nil
	})
	before := scans(follower)
	time.Sleep(time.Second)
	if scans(follower) != before {
		t.Fatalf("the follower %s ran the singleton job", follower)
	}
	kill9(t, leader)
	died := time.Now()
	for !leaderOf(t, follower).IsLeader {
		if time.Since(died) > 2*time.Second+500*time.Millisecond { // 2 × LEADER_TTL, plus a poll
			t.Fatalf("%s did not take over within 2×TTL", follower)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s leads %v after %s died (LEADER_TTL 1 s)", follower, time.Since(died), leader)
	ran := scans(follower)
	eventually(t, "the new leader runs the job", func() error {
		if scans(follower) <= ran {
			return fmt.Errorf("no scan yet")
		}
		return nil
	})
	restart(t, leader)
	time.Sleep(time.Second)
	if l := leaderOf(t, leader); l.IsLeader || l.LeaderID != follower {
		t.Fatalf("after restart: %+v, want %s to keep leading", l, follower)
	}
	if scans(leader) != 0 {
		t.Fatalf("the restarted follower ran the job")
	}
}
