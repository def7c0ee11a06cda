package procfile_test

import (
	"testing"

	"github.com/example/sagasuite/platform/procfile"
)

func TestParse(t *testing.T) {
	groups, err := procfile.Parse("test", `# comment
kafka: KAFKA_DATA_DIR=.dev/kafka exec bin/devkafka

orders: HTTP_ADDR=:8081 INSTANCE_ID=orders-1 exec bin/orders
tool: bin/tool --flag
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || len(groups[0]) != 1 || len(groups[1]) != 2 {
		t.Fatalf("groups %v", groups)
	}
	o := groups[1][0]
	if o.Name != "orders" || o.Binary != "orders" || o.Env["HTTP_ADDR"] != ":8081" || o.Env["INSTANCE_ID"] != "orders-1" {
		t.Errorf("orders: %+v", o)
	}
	if o.ReadyURL() != "http://127.0.0.1:8081/readyz" {
		t.Errorf("ready url %s", o.ReadyURL())
	}
	if k := groups[0][0]; k.Binary != "devkafka" || k.ReadyURL() != "" {
		t.Errorf("kafka: %+v", k)
	}
	if tool := groups[1][1]; tool.Binary != "tool" || len(tool.Env) != 0 {
		t.Errorf("tool: %+v", tool)
	}
}

func TestParseRefusesBadLines(t *testing.T) {
	for name, text := range map[string]string{
		"no colon":   "orders bin/orders",
		"twice":      "a: bin/a\na: bin/b",
		"no procs":   "# nothing\n",
		"no command": "a:",
	} {
		if _, err := procfile.Parse("test", text); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// The repository's own list parses, and every service process in it has
// an address to be ready on.
func TestDevProcfile(t *testing.T) {
	groups, err := procfile.Read("../../dev.procfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		for _, p := range g {
			if p.Binary == "" {
				t.Errorf("%s: no binary", p.Name)
			}
			if p.Binary != "devkafka" && p.Binary != "devetcd" && p.ReadyURL() == "" {
				t.Errorf("%s: no HTTP_ADDR", p.Name)
			}
		}
	}
}

// Every process gets half the cores as GOMAXPROCS, one at least, unless
// the developer set GOMAXPROCS.
func TestRuntimeEnv(t *testing.T) {
	unset := func(string) (string, bool) { return "", false }
	for cpus, want := range map[int]string{1: "GOMAXPROCS=1", 2: "GOMAXPROCS=1", 3: "GOMAXPROCS=1", 8: "GOMAXPROCS=4"} {
		if got := procfile.RuntimeEnv(unset, cpus); len(got) != 1 || got[0] != want {
			t.Errorf("%d cores: %q, want %q", cpus, got, want)
		}
	}
	set := func(k string) (string, bool) { return "3", k == "GOMAXPROCS" }
	if got := procfile.RuntimeEnv(set, 8); got != nil {
		t.Errorf("GOMAXPROCS set: %q, want nothing", got)
	}
}
