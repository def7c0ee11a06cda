package chassis

import (
	"os"
	"time"

	"github.com/example/sagasuite/platform/config"
)

// DefaultDatabaseURL is the local server `make dev` uses.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// FromEnv reads the settings every service shares (CONTRACT.md,
// "Environment"): HTTP_ADDR, DATABASE_URL, DATABASE_NAME, KAFKA_BROKERS,
// KAFKA_PARTITIONS, ADMIN_TOKEN, ADMIN_ADDR, INSTANCE_ID, LOG_LEVEL, DB_MAX_CONNS,
// CONSUMER_WORKERS, INBOX_RETENTION and ETCD_ENDPOINTS. Problems are
// collected in env with the service's own.
func FromEnv(env *config.Env, name, defaultAddr string) Config {
	host, _ := os.Hostname()
	return Config{
		Name:            name,
		InstanceID:      env.String("INSTANCE_ID", name+"-"+host),
		LogLevel:        env.LogLevel("LOG_LEVEL"),
		HTTPAddr:        env.Addr("HTTP_ADDR", defaultAddr),
		AdminToken:      env.Secret("ADMIN_TOKEN", "dev-admin-token"),
		AdminAddr:       env.OptionalAddr("ADMIN_ADDR"),
		DatabaseURL:     env.URL("DATABASE_URL", DefaultDatabaseURL, "postgres", "postgresql"),
		DatabaseName:    env.String("DATABASE_NAME", name),
		KafkaBrokers:    env.List("KAFKA_BROKERS", "127.0.0.1:9092"),
		KafkaPartitions: env.Int("KAFKA_PARTITIONS", 6, 1, 1000),
		DBMaxConns:      env.Int("DB_MAX_CONNS", 20, 2, 1000),
		ConsumerWorkers: env.Int("CONSUMER_WORKERS", 8, 1, 256),
		InboxRetention:  env.Duration("INBOX_RETENTION", 7*24*time.Hour),
		EtcdEndpoints:   env.List("ETCD_ENDPOINTS", "127.0.0.1:2379"),
	}
}
