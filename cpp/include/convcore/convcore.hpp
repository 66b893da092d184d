// convcore/convcore.hpp — the whole public C++ API.
#pragma once

#include "convcore/activation.hpp"
#include "convcore/conv2d.hpp"
#include "convcore/linear.hpp"
#include "convcore/runtime.hpp"
#include "convcore/types.hpp"
