// Command modgraph checks the repository's module graph (make modules):
// no module requires another of the repository's modules back, directly
// or through others, and no service's module requires another service's
// (services share only their <name>events contract modules). A cycle
// means no module of it can be copied or versioned alone, which is what a
// template promises.
//
//	modgraph DIR...    (each DIR holds a go.mod; make passes go.work's list)
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "modgraph:", err)
		os.Exit(1)
	}
}

// goMod is what `go mod edit -json` says of a go.mod.
type goMod struct {
	Module  struct{ Path string }
	Require []struct{ Path string }
}

func run(dirs []string, out io.Writer) error {
	if len(dirs) == 0 {
		return errors.New("usage: modgraph DIR [DIR]")
	}
	edges := map[string][]string{} // module path → the repository's modules it requires
	mods := map[string]string{}    // module path → its directory
	var all []goMod
	for _, d := range dirs {
		m, err := read(d)
		if err != nil {
			return err
		}
		mods[m.Module.Path] = d
		all = append(all, m)
	}
	var errs []error
	for _, m := range all {
		for _, r := range m.Require {
			if _, ours := mods[r.Path]; !ours {
				continue
			}
			edges[m.Module.Path] = append(edges[m.Module.Path], r.Path)
			if isService(m.Module.Path) && isService(r.Path) {
				errs = append(errs, fmt.Errorf("%s requires the service %s: require its contract module (%s/%sevents) instead",
					mods[m.Module.Path], r.Path, r.Path, path.Base(r.Path)))
			}
		}
	}
	if c := cycle(edges); c != nil {
		errs = append(errs, fmt.Errorf("the modules form a cycle: %s", strings.Join(c, " → ")))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(out, "modgraph: %d modules, %d requirements between them, no cycle\n", len(mods), count(edges))
	return nil
}

// read parses dir's go.mod with the go command itself.
func read(dir string) (goMod, error) {
	var m goMod
	cmd := exec.Command("go", "mod", "edit", "-json") // #nosec G204 -- fixed arguments
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	b, err := cmd.Output()
	if err != nil {
		return m, fmt.Errorf("%s: go mod edit -json: %w", dir, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", dir, err)
	}
	return m, nil
}

// isService reports whether path is a service's own module (not its
// contract module): …/services/<name>.
func isService(mod string) bool {
	return path.Base(path.Dir(mod)) == "services"
}

// cycle returns one cycle of the graph (its nodes, the first repeated at
// the end) or nil.
func cycle(edges map[string][]string) []string {
	const (
		unseen = iota
		open
		done
	)
	state := map[string]int{}
	var stack []string
	var found []string
	var visit func(n string) bool
	visit = func(n string) bool {
		state[n] = open
		stack = append(stack, n)
		for _, next := range edges[n] {
			switch state[next] {
			case open:
				i := slices.Index(stack, next)
				found = append(slices.Clone(stack[i:]), next)
				return true
			case unseen:
				if visit(next) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return false
	}
	nodes := make([]string, 0, len(edges))
	for n := range edges {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	for _, n := range nodes {
		if state[n] == unseen && visit(n) {
			return found
		}
	}
	return nil
}

func count(edges map[string][]string) int {
	n := 0
	for _, e := range edges {
		n += len(e)
	}
	return n
}
