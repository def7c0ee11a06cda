// Package procfile reads dev.procfile, the suite's one list of processes.
// `make dev` runs it (platform/cmd/devrun), the e2e suite starts the same
// processes from it on ports of its own, and `make new-service` adds a
// line to it: a new service joins all three by that one line.
//
// The format is a Procfile's: one process a line, "name: command" (run by
// bash), groups separated by blank lines (started in order, stopped in
// reverse), # comments. The command's leading NAME=value words are the
// process's own environment; the word after them (and after an optional
// exec) names its binary, e.g. bin/orders.
package procfile

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// Process is one line of the file.
type Process struct {
	Name    string
	Command string            // as written
	Env     map[string]string // the command's leading NAME=value words
	Binary  string            // the base name of the program it runs, e.g. "orders"
}

// ReadyURL is where the process answers /readyz, from its HTTP_ADDR
// (":8081" or "127.0.0.1:8081"), or "" for a process without one.
func (p Process) ReadyURL() string {
	addr := p.Env["HTTP_ADDR"]
	if addr == "" {
		return ""
	}
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	return "http://" + addr + "/readyz"
}

// Read parses the file at path into its groups.
func Read(path string) ([][]Process, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the procfile named by the caller
	if err != nil {
		return nil, err
	}
	return Parse(path, string(b))
}

// Parse parses text (named name in errors) into its groups.
func Parse(name, text string) ([][]Process, error) {
	var groups [][]Process
	var g []Process
	seen := map[string]bool{}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			if len(g) > 0 {
				groups, g = append(groups, g), nil
			}
		case strings.HasPrefix(line, "#"):
		default:
			pname, command, ok := strings.Cut(line, ":")
			pname, command = strings.TrimSpace(pname), strings.TrimSpace(command)
			if !ok || pname == "" || command == "" {
				return nil, fmt.Errorf("%s:%d: want \"name: command\"", name, n+1)
			}
			if seen[pname] {
				return nil, fmt.Errorf("%s:%d: process %s is listed twice", name, n+1, pname)
			}
			seen[pname] = true
			g = append(g, parseCommand(pname, command))
		}
	}
	if len(g) > 0 {
		groups = append(groups, g)
	}
	if len(groups) == 0 {
		return nil, fmt.Errorf("%s: no processes", name)
	}
	return groups, nil
}

func parseCommand(name, command string) Process {
	p := Process{Name: name, Command: command, Env: map[string]string{}}
	words := strings.Fields(command)
	i := 0
	for ; i < len(words); i++ {
		k, v, ok := strings.Cut(words[i], "=")
		if !ok || k == "" || strings.ContainsAny(k, "/.$") {
			break
		}
		p.Env[k] = v
	}
	if i < len(words) && words[i] == "exec" {
		i++
	}
	if i < len(words) {
		p.Binary = path.Base(words[i])
	}
	return p
}

// RuntimeEnv is the Go runtime setting every process of the file gets
// unless the environment (lookup) or its own line sets it: GOMAXPROCS,
// half of the machine's numCPU cores, at least one.
//
// The suite runs a dozen Go processes beside PostgreSQL. With a P for
// every core each, a process that wakes for one message wakes a second
// thread to look for more work, and the processes contend for the same
// cores. On two cores, one P each cut the CPU a saga took by 6 to 12 %,
// and the saga's median time at 100 orders/s to half
// (docs/performance.md). Half the cores still lets one busy process use
// half of a larger machine.
func RuntimeEnv(lookup func(string) (string, bool), numCPU int) []string {
	if _, set := lookup("GOMAXPROCS"); set {
		return nil
	}
	return []string{fmt.Sprintf("GOMAXPROCS=%d", max(1, numCPU/2))}
}
