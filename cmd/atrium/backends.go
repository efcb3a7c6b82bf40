package main

// The backends this binary carries, each registered under its URL scheme by
// its package (database/sql style), and the metadata schemas of the components
// it runs. This file is the one place to add either.
import (
	_ "github.com/atrium-ml/atrium/internal/data/offline/duckdb"  // duckdb:// offline engine
	_ "github.com/atrium-ml/atrium/internal/data/offline/spark"   // sc:// compute (stores.compute)
	_ "github.com/atrium-ml/atrium/internal/data/online/pebble"   // pebble:// online store
	_ "github.com/atrium-ml/atrium/internal/data/online/redis"    // redis:// online store
	_ "github.com/atrium-ml/atrium/internal/platform/artifact/fs" // file:// artifact store

	_ "github.com/atrium-ml/atrium/internal/data/online/cassandra" // cassandra:// online store

	"github.com/atrium-ml/atrium/internal/data/catalog"
	"github.com/atrium-ml/atrium/internal/data/pipeline"
	"github.com/atrium-ml/atrium/internal/data/profile/profiledb"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/modeling/tune/tunedb"
	"github.com/atrium-ml/atrium/internal/monitoring/alert"
	"github.com/atrium-ml/atrium/internal/monitoring/labels"
	"github.com/atrium-ml/atrium/internal/platform/auth"
	"github.com/atrium-ml/atrium/internal/platform/meta"
	"github.com/atrium-ml/atrium/internal/platform/scheduler"
	"github.com/atrium-ml/atrium/internal/registry"
	"github.com/atrium-ml/atrium/internal/tracking"
)

// metaSchemas are the tables of every component, migrated whenever the CLI
// opens the metadata database, so that any command leaves it at the newest
// schema of this binary.
var metaSchemas = []meta.Schema{
	catalog.Schema,
	pipeline.Schema,
	profiledb.Schema,
	retrieval.Schema,
	tracking.Schema,
	registry.Schema,
	auth.Schema,
	tunedb.Schema,
	alert.Schema,
	labels.Schema,
	scheduler.Schema,
}
