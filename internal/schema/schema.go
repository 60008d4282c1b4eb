// Package schema holds the migrations of Portico's own tables that are not
// the event log: credentials now; sessions, checkpoints and blobs as they come.
package schema

import (
	"embed"
	"io/fs"

	"github.com/portico-health/portico/internal/pgdb"
)

//go:embed migrations/*.sql
var files embed.FS

// Migrations is the application's migration set.
func Migrations() pgdb.Migration {
	sub, err := fs.Sub(files, "migrations")
	if err != nil {
		panic(err) // the embedded folder is part of the binary
	}
	return pgdb.Migration{Name: "portico", FS: sub}
}
