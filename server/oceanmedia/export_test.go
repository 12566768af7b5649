package oceanmedia

// SetListBatch sets how many index records a collection reads at a time,
// and returns a function that puts it back.
func SetListBatch(n int) func() {
	old := listBatch
	listBatch = n
	return func() { listBatch = old }
}
