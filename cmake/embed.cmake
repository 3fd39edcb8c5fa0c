# Turns a text file into a C++ header holding it as a string constant.
#   cmake -DINPUT=file -DOUTPUT=header -DNAME=kConstant -P embed.cmake
file(READ "${INPUT}" content)
file(WRITE "${OUTPUT}.tmp" "// Generated from ${INPUT} by cmake/embed.cmake: do not edit.\n#pragma once\ninline constexpr char ${NAME}[] = R\"corchembed(${content})corchembed\";\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
