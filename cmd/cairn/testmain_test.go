package main

import (
	"testing"

	"github.com/cairnstore/cairn/internal/testtool"
)

// TestMain stops the PostgreSQL cluster the tests may share.
func TestMain(m *testing.M) { testtool.Main(m) }
