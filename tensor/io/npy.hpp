// (placeholder)
#pragma once
