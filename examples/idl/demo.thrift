namespace rs demo

/** What a provider answers: the greeting and which node served it. */
struct Greeting {
  1: string message,
  2: string node,
  3: i64 served,
}

/** The demo service. `say` is safe to retry, so clients may fail over after it reached a node. */
service Demo {
  Greeting say(1: string name) (probe.idempotent),
}
