namespace * acme.common

struct Price {
  1: i64 cents,
  2: string currency = "EUR",
}
