/** A tiny IDL covering each kind of definition once. */
namespace rs golden

typedef i64 Id

const i32 LIMIT = 10

enum Color {
  RED = 1,
  GREEN,
}

struct Item {
  1: required Id id,
  2: optional string label,
  3: Color color = Color.GREEN,
  4: list<binary> blobs,
}

union Choice {
  1: Item item,
  2: string other,
}

exception Missing {
  1: Id id,
}

service Shop {
  Item fetch(1: Id id) throws (1: Missing missing) (probe.timeout_ms = "250"),
  oneway void poke(),
}
