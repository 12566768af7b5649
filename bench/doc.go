// Package bench holds cairn's end-to-end benchmarks: the engine's Put and
// Get at the sizes of the README's performance table, and the raw limits
// they stand on (BLAKE3, the chunker, an append with fdatasync), so each
// figure can be read against its floor. Sub-benchmarks are named as
// key=value pairs for benchstat:
//
//	go test ./bench -run '^$' -bench . -benchtime 2s -count 6 | tee new.txt
//	benchstat old.txt new.txt
//
// Nothing imports this package.
package bench
