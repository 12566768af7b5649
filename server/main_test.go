package server_test

import (
	"testing"

	"github.com/cairnstore/cairn/internal/testtool"
)

// TestMain stops the PostgreSQL cluster the tests share when the index
// is in PostgreSQL (enginetest.IndexEnv).
func TestMain(m *testing.M) { testtool.Main(m) }
