#include "nsamp/core/error.h"

namespace nsamp::detail {

void throw_error(const std::string& msg) { throw Error("nsamp: " + msg); }

}  // namespace nsamp::detail
