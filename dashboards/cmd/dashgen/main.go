// Command dashgen writes the suite's Grafana dashboards as JSON. Each
// panel is one entry of dashboards.go (the home page: home.go): its query,
// unit, thresholds, links and a description that says which pattern it
// shows and what good looks like; model.go turns them into Grafana's
// model. Edit there, then regenerate (a test fails while the committed
// JSON differs):
//
//	go run ./dashboards/cmd/dashgen -out dashboards
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	out := flag.String("out", "dashboards", "directory to write the dashboards to")
	flag.Parse()
	if err := write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "dashgen:", err)
		os.Exit(1)
	}
}

func write(dir string) error {
	for _, d := range All() {
		b, err := Render(d)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, d.UID+".json"), b, 0o644); err != nil { // #nosec G306 -- dashboards are committed files, readable by all
			return err
		}
	}
	return nil
}
