package postgrestest

import "github.com/example/sagasuite/platform/containertest"

// containerURL starts a PostgreSQL container when a Docker engine answers.
func containerURL() (string, bool, error) {
	return containertest.Postgres()
}
