package config

import (
	"strings"
	"testing"
)

func TestUploadSettings(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil || c.MaxUploadBytes != 10<<20 || c.BlobDir != "" {
		t.Fatalf("defaults: %d %q %v, want 10 MiB in the database", c.MaxUploadBytes, c.BlobDir, err)
	}
	c, err = FromEnv(env(map[string]string{"PORTAL_MAX_UPLOAD_BYTES": "2097152", "PORTAL_BLOB_DIR": "/var/lib/portico/blobs"}))
	if err != nil || c.MaxUploadBytes != 2<<20 || c.BlobDir != "/var/lib/portico/blobs" {
		t.Fatalf("set: %d %q %v", c.MaxUploadBytes, c.BlobDir, err)
	}
	for _, bad := range []string{"ten", "12", "-5", "9999999999999"} {
		if _, err := FromEnv(env(map[string]string{"PORTAL_MAX_UPLOAD_BYTES": bad})); err == nil || !strings.Contains(err.Error(), "PORTAL_MAX_UPLOAD_BYTES") {
			t.Errorf("PORTAL_MAX_UPLOAD_BYTES=%s: %v", bad, err)
		}
	}
}
