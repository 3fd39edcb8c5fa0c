// Kill points: the crash test's hook (tests/integration/crash_test.cc). Every step of a change
// that a crash could cut in two calls killPoint(): each resource recorded in an undo log, each
// undo of a rollback, each write of the graph store. With CORCH_KILL_POINT=N in the environment
// corchd kills itself with SIGKILL at the N-th call of the process (counted from 1), so that a
// test can crash it at a chosen point of a deploy, update or delete and check what a restart
// makes of it. With CORCH_KILL_POINT=0 nothing is killed, but every call is written to stderr
// ("kill point 7: <where>"), so that a test can count the points of a scenario. Unset (as in
// production) a call costs one relaxed atomic load.
#pragma once

#include <string_view>

namespace corch::state {

void killPoint(std::string_view where);

}  // namespace corch::state
