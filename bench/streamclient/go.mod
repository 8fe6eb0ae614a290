module modelprism/bench/streamclient

go 1.21
