namespace rs probe.tests.interop
namespace py interop

include "shared.thrift"

typedef i64 UserId
typedef list<string> Tags

const i32 MAX_USERS = 1000
const string GREETING = "hello"
const list<shared.Level> LEVELS = [shared.Level.LOW, shared.Level.HIGH]
const map<string, i32> LIMITS = {"a": 1, "b": 2}
const shared.Address HOME = {"city": "Berlin", "zip": 10117}

struct User {
  1: required UserId id,
  2: string name,
  3: optional shared.Address address,
  4: Tags tags,
  5: set<i32> lucky = [7, 13],
  6: map<string, double> scores,
  7: shared.Level level = shared.Level.MID,
  8: optional binary avatar,
  9: bool active = true,
  10: list<map<string, set<i64>>> nested,
  11: optional User parent,
  12: map<Point, string> points,
}

struct Point {
  1: double x,
  2: double y,
}

union Contact {
  1: string email,
  2: i64 phone,
  3: Point where,
}

exception NotFound {
  1: string message,
  2: UserId id,
}

exception Invalid {
  1: string reason,
}

service Base {
  string ping(1: string msg) (probe.idempotent),
}

/** A user directory. */
service Directory extends Base {
  User get(1: UserId id) throws (1: NotFound not_found, 2: Invalid invalid),
  void put(1: User user),
  list<User> find(1: string prefix, 2: optional i32 limit, 3: Contact contact),
  oneway void touch(1: UserId id),
  i32 count(),
}
