// Command flamegraph draws a CPU profile (pprof format, as the services'
// /debug/pprof/profile and make profile write) as a flame graph in SVG:
// each box a function in a call stack, as wide as its share of the
// samples, callers below their callees. docs/performance.md keeps the
// before and after graphs of each round.
//
//	go run ./loadtest/cmd/flamegraph -title "orders at 200/s" .dev/profile/orders.pprof > docs/perf/orders.svg
package main

import (
	"flag"
	"fmt"
	"html"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

func main() {
	title := flag.String("title", "", "the graph's title")
	width := flag.Float64("width", 1200, "width in pixels")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: flamegraph [-title T] PROFILE > graph.svg")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *title, *width, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "flamegraph:", err)
		os.Exit(1)
	}
}

func run(path, title string, width float64, out io.Writer) error {
	f, err := os.Open(path) // #nosec G304 -- the profile the operator names on the command line
	if err != nil {
		return err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return err
	}
	root := fold(p)
	return draw(out, root, title, width)
}

// node is a function at one place in the call tree: value is the
// samples (the profile's last sample type: CPU nanoseconds) of the stacks
// through it.
type node struct {
	name     string
	value    int64
	children map[string]*node
}

func (n *node) child(name string) *node {
	c, ok := n.children[name]
	if !ok {
		c = &node{name: name, children: map[string]*node{}}
		n.children[name] = c
	}
	return c
}

// fold merges the profile's stacks into one tree, from the root (the
// outermost caller) to the leaves; inlined functions are frames of their
// own, as pprof shows them.
func fold(p *profile.Profile) *node {
	root := &node{name: "all", children: map[string]*node{}}
	last := len(p.SampleType) - 1
	for _, s := range p.Sample {
		v := s.Value[last]
		root.value += v
		n := root
		for i := len(s.Location) - 1; i >= 0; i-- {
			lines := s.Location[i].Line
			for j := len(lines) - 1; j >= 0; j-- {
				name := "?"
				if lines[j].Function != nil {
					name = lines[j].Function.Name
				}
				n = n.child(name)
				n.value += v
			}
		}
	}
	return root
}

const rowHeight = 16

func depth(n *node) int {
	d := 0
	for _, c := range n.children {
		d = max(d, depth(c))
	}
	return d + 1
}

// draw writes the tree as SVG: the root at the bottom, children above
// their parent in name order, boxes narrower than two pixels (under 0.2 % of the samples at 1,200) left out: noise, and most of the file.
func draw(out io.Writer, root *node, title string, width float64) error {
	height := float64(depth(root)*rowHeight + 40)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="monospace" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%.0f" y="18" text-anchor="middle" font-size="14">%s</text>`+"\n", width/2, html.EscapeString(title))
	scale := width / float64(max(root.value, 1))
	var walk func(n *node, x float64, level int)
	walk = func(n *node, x float64, level int) {
		w := float64(n.value) * scale
		if w < 2 {
			return
		}
		y := height - float64((level+1)*rowHeight)
		share := 100 * float64(n.value) / float64(max(root.value, 1))
		fmt.Fprintf(&b, `<g><title>%s (%.2f%%)</title><rect x="%.1f" y="%.0f" width="%.1f" height="%d" fill="%s" stroke="white" stroke-width="0.5"/>`,
			html.EscapeString(n.name), share, x, y, w, rowHeight-1, color(n.name))
		if chars := int(w / 7); chars >= 3 {
			label := short(n.name)
			if len(label) > chars {
				label = label[:chars-2] + ".."
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f">%s</text>`, x+2, y+rowHeight-4, html.EscapeString(label))
		}
		b.WriteString("</g>\n")
		names := make([]string, 0, len(n.children))
		for name := range n.children {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			c := n.children[name]
			walk(c, x, level+1)
			x += float64(c.value) * scale
		}
	}
	walk(root, 0, 0)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(out, b.String())
	return err
}

// short drops the package path: "github.com/x/y/pkg.(*T).M" → "pkg.(*T).M".
func short(name string) string {
	if i := strings.LastIndex(name, "/"); i >= 0 {
		return name[i+1:]
	}
	return name
}

// color is a warm hue per function (stable across graphs), and blue for
// the runtime's own and system calls, so that the two stand apart.
func color(name string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	if strings.HasPrefix(name, "runtime.") || strings.HasPrefix(name, "syscall.") || strings.HasPrefix(name, "internal/runtime") {
		return fmt.Sprintf("rgb(%d,%d,230)", 80+h%60, 140+h%60)
	}
	return fmt.Sprintf("rgb(230,%d,%d)", 90+h%120, 40+h%50)
}
