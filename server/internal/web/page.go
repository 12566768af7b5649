package web

import (
	"net/http"
	"net/url"

	"github.com/cairnstore/cairn/engine"
)

// Page reads a page of the records of (namespace, tenant) whose names
// begin with prefix: at most limit, in name order, after the name after
// ("" for the first page). more reports whether another page follows,
// which starts after the last record returned.
func Page(e *engine.Engine, namespace, tenant, prefix, after string, limit int) (recs []engine.Record, more bool, err error) {
	for rec, err := range e.Records(namespace, tenant, prefix, after) {
		if err != nil {
			return nil, false, err
		}
		if rec.Key.Name == after {
			continue
		}
		if len(recs) == limit {
			return recs, true, nil
		}
		recs = append(recs, rec)
	}
	return recs, false, nil
}

// SetNext sets the Link header to the next page: path with the query q
// (after, limit and whatever else a page is asked with).
func SetNext(w http.ResponseWriter, path string, q url.Values) {
	w.Header().Set("Link", "<"+path+"?"+q.Encode()+`>; rel="next"`)
}
