namespace rs probe.tests.shared

/** Where a user lives. */
struct Address {
  1: required string city,
  2: optional string street,
  3: i32 zip = 10115,
}

enum Level {
  LOW = 1,
  MID,
  HIGH = 10,
}
