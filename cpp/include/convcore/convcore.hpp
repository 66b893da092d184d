// convcore/convcore.hpp — the whole public C++ API.
#pragma once

#include "convcore/activation.hpp"
#include "convcore/backward.hpp"
#include "convcore/conv2d.hpp"
#include "convcore/linear.hpp"
#include "convcore/locally_connected.hpp"
#include "convcore/pool.hpp"
#include "convcore/runtime.hpp"
#include "convcore/types.hpp"
