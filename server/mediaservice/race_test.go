//go:build race

package mediaservice_test

// raceSlowdown: the race detector makes code 2–20 times slower, so the
// bounds that say "at once" are looser under it.
const raceSlowdown = 10
