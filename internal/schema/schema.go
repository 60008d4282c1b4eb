// Package schema holds the migrations of Portico's own tables that are not
// the event log: credentials now; sessions, checkpoints and blobs as they come.
package schema

import (
	"embed"

	"github.com/portico-health/portico/internal/pgdb"
)

//go:embed migrations/*.sql
var files embed.FS

// Migrations is the application's migration set.
func Migrations() pgdb.Migration {
	return pgdb.Embedded("portico", files, "migrations")
}
