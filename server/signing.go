package server

import (
	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/signurl"
)

// SigningKeys are the store's keys for signed, expiring URLs (the
// `cairn signing-key` command): List, Rotate and Revoke.
func SigningKeys(e *engine.Engine) *signurl.Keys { return signurl.NewKeys(e) }
