namespace rs acme.shop
namespace py acme_shop

include "money.thrift"

struct Item {
  1: required string sku,
  2: money.Price price,
}

service Catalog {
  Item lookup(1: string sku),
}
