module modelprism/bench/fake_llm

go 1.21
