namespace rs acme.shop

include "catalog.thrift"
include "money.thrift"

struct Order {
  1: list<catalog.Item> items,
  2: money.Price total,
}
