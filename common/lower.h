// Lowering: insert the send/receive pairs a program needs between devices.
//
// For every F of stage s whose next stage lives on another device, a send-activation follows the
// F on its device and a receive-activation precedes the F of stage s + 1; likewise for gradients
// after every B/I of a stage whose previous stage lives elsewhere. Existing communication actions
// are kept as they are (a hand-written program may place its own), so lowering is idempotent.
#pragma once

#include "common/ir.h"

namespace pipecast::ir {

Program InsertCommunication(const Program& program);

// True if the program contains any send or receive.
bool HasCommunication(const Program& program);

}  // namespace pipecast::ir
