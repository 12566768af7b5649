// Package fuzz holds the fuzz targets for every parser of untrusted bytes
// in the engine: segment records (bytes read back from disk), index keys
// and values. API parsers keep their fuzz targets next to them (for
// example server/mediaservice/query).
//
// Each target's seed corpus is in testdata/fuzz/<Target>/ and runs as a
// normal test with `go test ./fuzz/`. To fuzz one target:
//
//	go test ./fuzz/ -run '^$' -fuzz '^FuzzSegmentScan$' -fuzztime 60s
//
// A crasher the fuzzer finds is written to testdata/fuzz/<Target>/ and
// becomes a seed: commit it with the fix.
package fuzz
